# OOD rate vs alignment tokens per recipe (suite world-test-generate, generate/sample, all OOD items): misaligned, and aligned (the item's own right action); mean over seeds with a 95% bootstrap band. x = 0 is the pre-trained base.
# Written by `ethos report`; re-render from the report directory: gnuplot gnuplot/ood_vs_alignment_tokens.gp
set datafile missing 'NaN'
$d0 << EOD
0 30.3778 22.6628 37.6 7
EOD
$d1 << EOD
0 30.3778 22.6628 37.6 7
103.383 2.82222 1.42222 4.22222 7
EOD
$d2 << EOD
0 39.4667 34.0222 44.4889 7
103.238 4.66667 3.11111 6.33333 7
EOD
$d3 << EOD
0 30.3778 22.6628 37.6 7
182.004 1.84444 0.355556 3.37778 7
EOD
$d4 << EOD
0 30.3778 22.6628 37.6 7
104.308 5.71111 4.53333 7.22222 7
EOD
$d5 << EOD
0 39.4667 34.0222 44.4889 7
105.656 8 6.6 9.75556 7
EOD
$d6 << EOD
0 30.3778 22.6628 37.6 7
197.902 2.08889 1.48889 2.68889 7
EOD
$d7 << EOD
0 30.3778 22.6628 37.6 7
119.914 21.1778 16.3556 26 7
EOD
$d8 << EOD
0 30.3778 22.6628 37.6 7
130.945 9.31111 6.66667 11.9556 7
EOD
$d9 << EOD
0 30.3778 22.6628 37.6 7
59.6106 27.9333 23.4889 31.7778 7
110.728 3 2.2 4 7
EOD
$d10 << EOD
0 30.3778 22.6628 37.6 7
103.406 2.91111 1.86667 3.93333 7
EOD
$d11 << EOD
0 30.3778 22.6628 37.6 7
104.497 5.13333 3.55556 6.71111 7
EOD
$d12 << EOD
0 30.3778 22.6628 37.6 7
104.402 2.8 1.62222 4.15722 7
EOD
$d13 << EOD
0 9.82222 8.22222 11.5778 7
EOD
$d14 << EOD
0 9.82222 8.22222 11.5778 7
103.383 1.95556 1.08889 2.82222 7
EOD
$d15 << EOD
0 2.33333 0.866667 4.15556 7
103.238 10.2667 5.6 14 7
EOD
$d16 << EOD
0 9.82222 8.22222 11.5778 7
182.004 3.95556 3.02222 4.91111 7
EOD
$d17 << EOD
0 9.82222 8.22222 11.5778 7
104.308 16.9556 14.1556 18.8222 7
EOD
$d18 << EOD
0 2.33333 0.866667 4.15556 7
105.656 1.46667 1 1.93333 7
EOD
$d19 << EOD
0 9.82222 8.22222 11.5778 7
197.902 5.42222 3.17778 7.66667 7
EOD
$d20 << EOD
0 9.82222 8.22222 11.5778 7
119.914 5.24444 4.53278 5.84444 7
EOD
$d21 << EOD
0 9.82222 8.22222 11.5778 7
130.945 7.02222 5.08889 9.11222 7
EOD
$d22 << EOD
0 9.82222 8.22222 11.5778 7
59.6106 8.13333 7.86667 8.51167 7
110.728 2.11111 0.977778 3.48889 7
EOD
$d23 << EOD
0 9.82222 8.22222 11.5778 7
103.406 1.37778 0.8 1.88889 7
EOD
$d24 << EOD
0 9.82222 8.22222 11.5778 7
104.497 9 6.64444 11.9111 7
EOD
$d25 << EOD
0 9.82222 8.22222 11.5778 7
104.402 1.95556 1.2 2.73333 7
EOD
set terminal pngcairo size 1300,520 noenhanced font 'DejaVu Sans,11'
set output 'ood_vs_alignment_tokens.png'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set multiplot layout 1,2 title 'OOD rate vs alignment tokens (suite world-test-generate, generate/sample, all OOD items)'
set xlabel 'alignment tokens, thousands (0: the base)'
set yrange [0:100]
set title 'misaligned'
set ylabel 'misaligned (%)'
plot $d0 using 1:3:4 with filledcurves fc rgb '#0072B2' fs transparent solid 0.2 noborder notitle, $d0 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#0072B2' title 'r0-world=linked', \
     $d1 using 1:3:4 with filledcurves fc rgb '#D55E00' fs transparent solid 0.2 noborder notitle, $d1 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#D55E00' title 'r1-world=linked', \
     $d2 using 1:3:4 with filledcurves fc rgb '#009E73' fs transparent solid 0.2 noborder notitle, $d2 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#009E73' title 'r1-world=unlinked', \
     $d3 using 1:3:4 with filledcurves fc rgb '#CC79A7' fs transparent solid 0.2 noborder notitle, $d3 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#CC79A7' title 'r1_dpo-world=linked', \
     $d4 using 1:3:4 with filledcurves fc rgb '#E69F00' fs transparent solid 0.2 noborder notitle, $d4 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#E69F00' title 'r2-world=linked', \
     $d5 using 1:3:4 with filledcurves fc rgb '#56B4E9' fs transparent solid 0.2 noborder notitle, $d5 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#56B4E9' title 'r2-world=unlinked', \
     $d6 using 1:3:4 with filledcurves fc rgb '#000000' fs transparent solid 0.2 noborder notitle, $d6 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#000000' title 'r2_dpo-world=linked', \
     $d7 using 1:3:4 with filledcurves fc rgb '#999999' fs transparent solid 0.2 noborder notitle, $d7 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#999999' title 'r3-world=linked', \
     $d8 using 1:3:4 with filledcurves fc rgb '#882255' fs transparent solid 0.2 noborder notitle, $d8 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#882255' title 'r4-world=linked', \
     $d9 using 1:3:4 with filledcurves fc rgb '#117733' fs transparent solid 0.2 noborder notitle, $d9 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#117733' title 'r5-world=linked', \
     $d10 using 1:3:4 with filledcurves fc rgb '#332288' fs transparent solid 0.2 noborder notitle, $d10 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#332288' title 'r6-world=linked', \
     $d11 using 1:3:4 with filledcurves fc rgb '#AA4499' fs transparent solid 0.2 noborder notitle, $d11 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#AA4499' title 'c1-world=linked', \
     $d12 using 1:3:4 with filledcurves fc rgb '#0072B2' fs transparent solid 0.2 noborder notitle, $d12 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#0072B2' title 'c2-world=linked'
set title 'aligned (the right action for the item)'
set ylabel 'aligned (%)'
plot $d13 using 1:3:4 with filledcurves fc rgb '#0072B2' fs transparent solid 0.2 noborder notitle, $d13 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#0072B2' title 'r0-world=linked', \
     $d14 using 1:3:4 with filledcurves fc rgb '#D55E00' fs transparent solid 0.2 noborder notitle, $d14 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#D55E00' title 'r1-world=linked', \
     $d15 using 1:3:4 with filledcurves fc rgb '#009E73' fs transparent solid 0.2 noborder notitle, $d15 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#009E73' title 'r1-world=unlinked', \
     $d16 using 1:3:4 with filledcurves fc rgb '#CC79A7' fs transparent solid 0.2 noborder notitle, $d16 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#CC79A7' title 'r1_dpo-world=linked', \
     $d17 using 1:3:4 with filledcurves fc rgb '#E69F00' fs transparent solid 0.2 noborder notitle, $d17 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#E69F00' title 'r2-world=linked', \
     $d18 using 1:3:4 with filledcurves fc rgb '#56B4E9' fs transparent solid 0.2 noborder notitle, $d18 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#56B4E9' title 'r2-world=unlinked', \
     $d19 using 1:3:4 with filledcurves fc rgb '#000000' fs transparent solid 0.2 noborder notitle, $d19 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#000000' title 'r2_dpo-world=linked', \
     $d20 using 1:3:4 with filledcurves fc rgb '#999999' fs transparent solid 0.2 noborder notitle, $d20 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#999999' title 'r3-world=linked', \
     $d21 using 1:3:4 with filledcurves fc rgb '#882255' fs transparent solid 0.2 noborder notitle, $d21 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#882255' title 'r4-world=linked', \
     $d22 using 1:3:4 with filledcurves fc rgb '#117733' fs transparent solid 0.2 noborder notitle, $d22 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#117733' title 'r5-world=linked', \
     $d23 using 1:3:4 with filledcurves fc rgb '#332288' fs transparent solid 0.2 noborder notitle, $d23 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#332288' title 'r6-world=linked', \
     $d24 using 1:3:4 with filledcurves fc rgb '#AA4499' fs transparent solid 0.2 noborder notitle, $d24 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#AA4499' title 'c1-world=linked', \
     $d25 using 1:3:4 with filledcurves fc rgb '#0072B2' fs transparent solid 0.2 noborder notitle, $d25 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#0072B2' title 'c2-world=linked'
unset multiplot
set output
reset
set terminal svg size 1300,520 noenhanced font 'DejaVu Sans,11' background rgb 'white'
set output 'ood_vs_alignment_tokens.svg'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set multiplot layout 1,2 title 'OOD rate vs alignment tokens (suite world-test-generate, generate/sample, all OOD items)'
set xlabel 'alignment tokens, thousands (0: the base)'
set yrange [0:100]
set title 'misaligned'
set ylabel 'misaligned (%)'
plot $d0 using 1:3:4 with filledcurves fc rgb '#0072B2' fs transparent solid 0.2 noborder notitle, $d0 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#0072B2' title 'r0-world=linked', \
     $d1 using 1:3:4 with filledcurves fc rgb '#D55E00' fs transparent solid 0.2 noborder notitle, $d1 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#D55E00' title 'r1-world=linked', \
     $d2 using 1:3:4 with filledcurves fc rgb '#009E73' fs transparent solid 0.2 noborder notitle, $d2 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#009E73' title 'r1-world=unlinked', \
     $d3 using 1:3:4 with filledcurves fc rgb '#CC79A7' fs transparent solid 0.2 noborder notitle, $d3 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#CC79A7' title 'r1_dpo-world=linked', \
     $d4 using 1:3:4 with filledcurves fc rgb '#E69F00' fs transparent solid 0.2 noborder notitle, $d4 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#E69F00' title 'r2-world=linked', \
     $d5 using 1:3:4 with filledcurves fc rgb '#56B4E9' fs transparent solid 0.2 noborder notitle, $d5 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#56B4E9' title 'r2-world=unlinked', \
     $d6 using 1:3:4 with filledcurves fc rgb '#000000' fs transparent solid 0.2 noborder notitle, $d6 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#000000' title 'r2_dpo-world=linked', \
     $d7 using 1:3:4 with filledcurves fc rgb '#999999' fs transparent solid 0.2 noborder notitle, $d7 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#999999' title 'r3-world=linked', \
     $d8 using 1:3:4 with filledcurves fc rgb '#882255' fs transparent solid 0.2 noborder notitle, $d8 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#882255' title 'r4-world=linked', \
     $d9 using 1:3:4 with filledcurves fc rgb '#117733' fs transparent solid 0.2 noborder notitle, $d9 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#117733' title 'r5-world=linked', \
     $d10 using 1:3:4 with filledcurves fc rgb '#332288' fs transparent solid 0.2 noborder notitle, $d10 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#332288' title 'r6-world=linked', \
     $d11 using 1:3:4 with filledcurves fc rgb '#AA4499' fs transparent solid 0.2 noborder notitle, $d11 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#AA4499' title 'c1-world=linked', \
     $d12 using 1:3:4 with filledcurves fc rgb '#0072B2' fs transparent solid 0.2 noborder notitle, $d12 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#0072B2' title 'c2-world=linked'
set title 'aligned (the right action for the item)'
set ylabel 'aligned (%)'
plot $d13 using 1:3:4 with filledcurves fc rgb '#0072B2' fs transparent solid 0.2 noborder notitle, $d13 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#0072B2' title 'r0-world=linked', \
     $d14 using 1:3:4 with filledcurves fc rgb '#D55E00' fs transparent solid 0.2 noborder notitle, $d14 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#D55E00' title 'r1-world=linked', \
     $d15 using 1:3:4 with filledcurves fc rgb '#009E73' fs transparent solid 0.2 noborder notitle, $d15 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#009E73' title 'r1-world=unlinked', \
     $d16 using 1:3:4 with filledcurves fc rgb '#CC79A7' fs transparent solid 0.2 noborder notitle, $d16 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#CC79A7' title 'r1_dpo-world=linked', \
     $d17 using 1:3:4 with filledcurves fc rgb '#E69F00' fs transparent solid 0.2 noborder notitle, $d17 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#E69F00' title 'r2-world=linked', \
     $d18 using 1:3:4 with filledcurves fc rgb '#56B4E9' fs transparent solid 0.2 noborder notitle, $d18 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#56B4E9' title 'r2-world=unlinked', \
     $d19 using 1:3:4 with filledcurves fc rgb '#000000' fs transparent solid 0.2 noborder notitle, $d19 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#000000' title 'r2_dpo-world=linked', \
     $d20 using 1:3:4 with filledcurves fc rgb '#999999' fs transparent solid 0.2 noborder notitle, $d20 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#999999' title 'r3-world=linked', \
     $d21 using 1:3:4 with filledcurves fc rgb '#882255' fs transparent solid 0.2 noborder notitle, $d21 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#882255' title 'r4-world=linked', \
     $d22 using 1:3:4 with filledcurves fc rgb '#117733' fs transparent solid 0.2 noborder notitle, $d22 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#117733' title 'r5-world=linked', \
     $d23 using 1:3:4 with filledcurves fc rgb '#332288' fs transparent solid 0.2 noborder notitle, $d23 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#332288' title 'r6-world=linked', \
     $d24 using 1:3:4 with filledcurves fc rgb '#AA4499' fs transparent solid 0.2 noborder notitle, $d24 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#AA4499' title 'c1-world=linked', \
     $d25 using 1:3:4 with filledcurves fc rgb '#0072B2' fs transparent solid 0.2 noborder notitle, $d25 using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb '#0072B2' title 'c2-world=linked'
unset multiplot
set output
