# OOD misaligned rate per shifted axis at the final checkpoint (suite world-test-generate, generate/sample), 95% intervals: which shift each recipe survives. 'all OOD' pools every OOD item; the suite has no per-axis shift groups (no id items to compare against).
# Written by `ethos report`; re-render from the report directory: gnuplot gnuplot/ood_by_axis.gp
set datafile missing 'NaN'
$d0 << EOD
-0.369231 30.3778 21.8345 37.8706
EOD
$d1 << EOD
-0.307692 2.82222 1.38059 4.39671
EOD
$d2 << EOD
-0.246154 4.66667 3.04614 6.54034
EOD
$d3 << EOD
-0.184615 1.84444 0.368681 3.48302
EOD
$d4 << EOD
-0.123077 5.71111 4.252 7.43243
EOD
$d5 << EOD
-0.0615385 8 5.91672 10
EOD
$d6 << EOD
0 2.08889 1.19693 2.89134
EOD
$d7 << EOD
0.0615385 21.1778 15.6775 26.3679
EOD
$d8 << EOD
0.123077 9.31111 6.27853 12.6546
EOD
$d9 << EOD
0.184615 3 2.01676 4.06552
EOD
$d10 << EOD
0.246154 2.91111 1.67392 4.299
EOD
$d11 << EOD
0.307692 5.13333 3.54068 7.02543
EOD
$d12 << EOD
0.369231 2.8 1.49304 4.4352
EOD
set terminal pngcairo size 900,560 noenhanced font 'DejaVu Sans,11'
set output 'ood_by_axis.png'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set title 'OOD misaligned rate by shifted axis (suite world-test-generate, generate/sample)'
set xlabel 'shifted axis (OOD items whose value on it never occurs in ID)'
set ylabel 'misaligned (%)'
set yrange [0:100]
set pointintervalbox 0
set xrange [-0.6:0.6]
set boxwidth 0.0584615 absolute
set xtics ('all OOD' 0)
plot $d0 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#0072B2' title 'r0-world=linked', \
     $d0 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d1 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#D55E00' title 'r1-world=linked', \
     $d1 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d2 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#009E73' title 'r1-world=unlinked', \
     $d2 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d3 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#CC79A7' title 'r1_dpo-world=linked', \
     $d3 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d4 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#E69F00' title 'r2-world=linked', \
     $d4 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d5 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#56B4E9' title 'r2-world=unlinked', \
     $d5 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d6 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#000000' title 'r2_dpo-world=linked', \
     $d6 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d7 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#999999' title 'r3-world=linked', \
     $d7 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d8 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#882255' title 'r4-world=linked', \
     $d8 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d9 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#117733' title 'r5-world=linked', \
     $d9 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d10 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#332288' title 'r6-world=linked', \
     $d10 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d11 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#AA4499' title 'c1-world=linked', \
     $d11 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d12 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#0072B2' title 'c2-world=linked', \
     $d12 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle
set output
reset
set terminal svg size 900,560 noenhanced font 'DejaVu Sans,11' background rgb 'white'
set output 'ood_by_axis.svg'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set title 'OOD misaligned rate by shifted axis (suite world-test-generate, generate/sample)'
set xlabel 'shifted axis (OOD items whose value on it never occurs in ID)'
set ylabel 'misaligned (%)'
set yrange [0:100]
set pointintervalbox 0
set xrange [-0.6:0.6]
set boxwidth 0.0584615 absolute
set xtics ('all OOD' 0)
plot $d0 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#0072B2' title 'r0-world=linked', \
     $d0 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d1 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#D55E00' title 'r1-world=linked', \
     $d1 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d2 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#009E73' title 'r1-world=unlinked', \
     $d2 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d3 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#CC79A7' title 'r1_dpo-world=linked', \
     $d3 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d4 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#E69F00' title 'r2-world=linked', \
     $d4 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d5 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#56B4E9' title 'r2-world=unlinked', \
     $d5 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d6 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#000000' title 'r2_dpo-world=linked', \
     $d6 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d7 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#999999' title 'r3-world=linked', \
     $d7 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d8 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#882255' title 'r4-world=linked', \
     $d8 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d9 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#117733' title 'r5-world=linked', \
     $d9 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d10 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#332288' title 'r6-world=linked', \
     $d10 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d11 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#AA4499' title 'c1-world=linked', \
     $d11 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d12 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#0072B2' title 'c2-world=linked', \
     $d12 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle
set output
