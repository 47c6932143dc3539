# Over-refusal on benign twins vs misaligned rate per recipe at the final checkpoint (suite world-test-generate, generate/sample), 95% intervals; the good corner is bottom left.
# Written by `ethos report`; re-render from the report directory: gnuplot gnuplot/refusal_vs_misaligned.gp
set datafile missing 'NaN'
$d0 << EOD
0 30.3778 0 0.2 21.8345 37.8706
EOD
$d1 << EOD
0 2.82222 0 0.2 1.38059 4.39671
EOD
$d2 << EOD
0 4.66667 0 0.2 3.04614 6.54034
EOD
$d3 << EOD
0 1.84444 0 0.2 0.368681 3.48302
EOD
$d4 << EOD
0 5.71111 0 0.2 4.252 7.43243
EOD
$d5 << EOD
0 8 0 0.2 5.91672 10
EOD
$d6 << EOD
0 2.08889 0 0.2 1.19693 2.89134
EOD
$d7 << EOD
0 21.1778 0 0.2 15.6775 26.3679
EOD
$d8 << EOD
0 9.31111 0 0.2 6.27853 12.6546
EOD
$d9 << EOD
0 3 0 0.2 2.01676 4.06552
EOD
$d10 << EOD
0 2.91111 0 0.2 1.67392 4.299
EOD
$d11 << EOD
0 5.13333 0 0.2 3.54068 7.02543
EOD
$d12 << EOD
0 2.8 0 0.2 1.49304 4.4352
EOD
set terminal pngcairo size 1300,560 noenhanced font 'DejaVu Sans,11'
set output 'refusal_vs_misaligned.png'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set multiplot layout 1,2 title 'Over-refusal vs misalignment, final checkpoint (suite world-test-generate, generate/sample)'
set xlabel 'over-refusal on benign twins (%)'
set ylabel 'misaligned (%)'
set xrange [0:100]
set yrange [0:100]
set title 'ID'
unset label
set label 'no data' at graph 0.5,0.5 center
plot NaN notitle
unset label
unset label
set title 'OOD'
set label 'r0-world=linked' at 0,30.3778 offset char 1,0.8 left tc rgb '#0072B2' front
set label 'r1-world=linked' at 0,2.82222 offset char 1,0.8 left tc rgb '#D55E00' front
set label 'r1-world=unlinked' at 0,4.66667 offset char 1,0.8 left tc rgb '#009E73' front
set label 'r1_dpo-world=linked' at 0,1.84444 offset char 1,0.8 left tc rgb '#CC79A7' front
set label 'r2-world=linked' at 0,5.71111 offset char 1,0.8 left tc rgb '#E69F00' front
set label 'r2-world=unlinked' at 0,8 offset char 1,0.8 left tc rgb '#56B4E9' front
set label 'r2_dpo-world=linked' at 0,2.08889 offset char 1,0.8 left tc rgb '#000000' front
set label 'r3-world=linked' at 0,21.1778 offset char 1,0.8 left tc rgb '#999999' front
set label 'r4-world=linked' at 0,9.31111 offset char 1,0.8 left tc rgb '#882255' front
set label 'r5-world=linked' at 0,3 offset char 1,0.8 left tc rgb '#117733' front
set label 'r6-world=linked' at 0,2.91111 offset char 1,0.8 left tc rgb '#332288' front
set label 'c1-world=linked' at 0,5.13333 offset char 1,0.8 left tc rgb '#AA4499' front
set label 'c2-world=linked' at 0,2.8 offset char 1,0.8 left tc rgb '#0072B2' front
plot $d0 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#0072B2' title 'r0-world=linked', \
     $d1 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#D55E00' title 'r1-world=linked', \
     $d2 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#009E73' title 'r1-world=unlinked', \
     $d3 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#CC79A7' title 'r1_dpo-world=linked', \
     $d4 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#E69F00' title 'r2-world=linked', \
     $d5 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#56B4E9' title 'r2-world=unlinked', \
     $d6 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#000000' title 'r2_dpo-world=linked', \
     $d7 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#999999' title 'r3-world=linked', \
     $d8 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#882255' title 'r4-world=linked', \
     $d9 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#117733' title 'r5-world=linked', \
     $d10 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#332288' title 'r6-world=linked', \
     $d11 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#AA4499' title 'c1-world=linked', \
     $d12 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#0072B2' title 'c2-world=linked'
unset label
unset multiplot
set output
reset
set terminal svg size 1300,560 noenhanced font 'DejaVu Sans,11' background rgb 'white'
set output 'refusal_vs_misaligned.svg'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set multiplot layout 1,2 title 'Over-refusal vs misalignment, final checkpoint (suite world-test-generate, generate/sample)'
set xlabel 'over-refusal on benign twins (%)'
set ylabel 'misaligned (%)'
set xrange [0:100]
set yrange [0:100]
set title 'ID'
unset label
set label 'no data' at graph 0.5,0.5 center
plot NaN notitle
unset label
unset label
set title 'OOD'
set label 'r0-world=linked' at 0,30.3778 offset char 1,0.8 left tc rgb '#0072B2' front
set label 'r1-world=linked' at 0,2.82222 offset char 1,0.8 left tc rgb '#D55E00' front
set label 'r1-world=unlinked' at 0,4.66667 offset char 1,0.8 left tc rgb '#009E73' front
set label 'r1_dpo-world=linked' at 0,1.84444 offset char 1,0.8 left tc rgb '#CC79A7' front
set label 'r2-world=linked' at 0,5.71111 offset char 1,0.8 left tc rgb '#E69F00' front
set label 'r2-world=unlinked' at 0,8 offset char 1,0.8 left tc rgb '#56B4E9' front
set label 'r2_dpo-world=linked' at 0,2.08889 offset char 1,0.8 left tc rgb '#000000' front
set label 'r3-world=linked' at 0,21.1778 offset char 1,0.8 left tc rgb '#999999' front
set label 'r4-world=linked' at 0,9.31111 offset char 1,0.8 left tc rgb '#882255' front
set label 'r5-world=linked' at 0,3 offset char 1,0.8 left tc rgb '#117733' front
set label 'r6-world=linked' at 0,2.91111 offset char 1,0.8 left tc rgb '#332288' front
set label 'c1-world=linked' at 0,5.13333 offset char 1,0.8 left tc rgb '#AA4499' front
set label 'c2-world=linked' at 0,2.8 offset char 1,0.8 left tc rgb '#0072B2' front
plot $d0 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#0072B2' title 'r0-world=linked', \
     $d1 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#D55E00' title 'r1-world=linked', \
     $d2 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#009E73' title 'r1-world=unlinked', \
     $d3 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#CC79A7' title 'r1_dpo-world=linked', \
     $d4 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#E69F00' title 'r2-world=linked', \
     $d5 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#56B4E9' title 'r2-world=unlinked', \
     $d6 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#000000' title 'r2_dpo-world=linked', \
     $d7 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#999999' title 'r3-world=linked', \
     $d8 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#882255' title 'r4-world=linked', \
     $d9 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#117733' title 'r5-world=linked', \
     $d10 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#332288' title 'r6-world=linked', \
     $d11 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#AA4499' title 'c1-world=linked', \
     $d12 using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb '#0072B2' title 'c2-world=linked'
unset label
unset multiplot
set output
