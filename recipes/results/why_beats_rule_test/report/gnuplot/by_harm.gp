# Misaligned and right-action rate per harm type and recipe at the final checkpoint (suite world-test-generate, generate/sample), mean over seeds, in percent. (ood): the harm type's items in the OOD split; a harm type found only there is one alignment never showed.
# Written by `ethos report`; re-render from the report directory: gnuplot gnuplot/by_harm.gp
set datafile missing 'NaN'
$d0 << EOD
0 0 29.5536
1 0 28.4821
2 0 42.6316
3 0 20.625
0 1 2.76786
1 1 2.23214
2 1 5.17544
3 1 1.07143
0 2 3.30357
1 2 6.33929
2 2 6.92982
3 2 2.05357
0 3 1.25
1 3 1.33929
2 3 3.24561
3 3 1.51786
0 4 7.67857
1 4 4.01786
2 4 7.54386
3 4 3.57143
0 5 7.76786
1 5 9.73214
2 5 9.73684
3 5 4.73214
0 6 2.32143
1 6 0.892857
2 6 4.47368
3 6 0.625
0 7 18.125
1 7 19.5536
2 7 32.3684
3 7 14.4643
0 8 8.39286
1 8 8.125
2 8 13.9474
3 8 6.69643
0 9 2.23214
1 9 3.48214
2 9 4.5614
3 9 1.69643
0 10 1.875
1 10 2.94643
2 10 5.96491
3 10 0.803571
0 11 4.64286
1 11 5.35714
2 11 7.80702
3 11 2.67857
0 12 2.67857
1 12 2.5
2 12 4.47368
3 12 1.51786
EOD
$d1 << EOD
0 0 22.8571
1 0 6.69643
2 0 4.47368
3 0 5.35714
0 1 4.10714
1 1 1.69643
2 1 1.05263
3 1 0.982143
0 2 26.5179
1 2 9.28571
2 2 2.63158
3 2 2.76786
0 3 10.3571
1 3 4.375
2 3 0.438596
3 3 0.714286
0 4 34.1071
1 4 12.4107
2 4 18.6842
3 4 2.58929
0 5 2.5
1 5 2.41071
2 5 0.175439
3 5 0.803571
0 6 9.28571
1 6 4.375
2 6 5.87719
3 6 2.14286
0 7 13.0357
1 7 4.91071
2 7 0.614035
3 7 2.5
0 8 13.2143
1 8 6.875
2 8 4.5614
3 8 3.48214
0 9 3.39286
1 9 2.32143
2 9 0.614035
3 9 2.14286
0 10 2.58929
1 10 1.42857
2 10 0.964912
3 10 0.535714
0 11 23.8393
1 11 4.55357
2 11 6.22807
3 11 1.42857
0 12 4.19643
1 12 3.21429
2 12 0.350877
3 12 0.0892857
EOD
set terminal pngcairo size 1000,702 noenhanced font 'DejaVu Sans,11'
set output 'by_harm.png'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set multiplot layout 1,2 title 'Per harm type, final checkpoint (suite world-test-generate, generate/sample)'
unset key
unset grid
set cbrange [0:100]
set xrange [-0.5:3.5]
set yrange [12.5:-0.5]
set xtics rotate by -35 left ('bypass_signoff (ood)' 0, 'misreport_backup (ood)' 1, 'permit_hostage (ood)' 2, 'sell_customers (ood)' 3)
set ytics ('r0-world=linked' 0, 'r1-world=linked' 1, 'r1-world=unlinked' 2, 'r1_dpo-world=linked' 3, 'r2-world=linked' 4, 'r2-world=unlinked' 5, 'r2_dpo-world=linked' 6, 'r3-world=linked' 7, 'r4-world=linked' 8, 'r5-world=linked' 9, 'r6-world=linked' 10, 'c1-world=linked' 11, 'c2-world=linked' 12)
set title 'misaligned (%)'
set palette defined (0 '#ffffff', 100 '#b2182b')
plot $d0 using 1:2:(0.5):(0.5):3 with boxxyerror fs solid 1.0 noborder fc palette notitle, \
     $d0 using 1:2:(sprintf("%.0f", $3)) with labels font ',9' notitle
set title 'right action (%)'
set palette defined (0 '#ffffff', 100 '#1b7837')
plot $d1 using 1:2:(0.5):(0.5):3 with boxxyerror fs solid 1.0 noborder fc palette notitle, \
     $d1 using 1:2:(sprintf("%.0f", $3)) with labels font ',9' notitle
unset multiplot
set output
reset
set terminal svg size 1000,702 noenhanced font 'DejaVu Sans,11' background rgb 'white'
set output 'by_harm.svg'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set multiplot layout 1,2 title 'Per harm type, final checkpoint (suite world-test-generate, generate/sample)'
unset key
unset grid
set cbrange [0:100]
set xrange [-0.5:3.5]
set yrange [12.5:-0.5]
set xtics rotate by -35 left ('bypass_signoff (ood)' 0, 'misreport_backup (ood)' 1, 'permit_hostage (ood)' 2, 'sell_customers (ood)' 3)
set ytics ('r0-world=linked' 0, 'r1-world=linked' 1, 'r1-world=unlinked' 2, 'r1_dpo-world=linked' 3, 'r2-world=linked' 4, 'r2-world=unlinked' 5, 'r2_dpo-world=linked' 6, 'r3-world=linked' 7, 'r4-world=linked' 8, 'r5-world=linked' 9, 'r6-world=linked' 10, 'c1-world=linked' 11, 'c2-world=linked' 12)
set title 'misaligned (%)'
set palette defined (0 '#ffffff', 100 '#b2182b')
plot $d0 using 1:2:(0.5):(0.5):3 with boxxyerror fs solid 1.0 noborder fc palette notitle, \
     $d0 using 1:2:(sprintf("%.0f", $3)) with labels font ',9' notitle
set title 'right action (%)'
set palette defined (0 '#ffffff', 100 '#1b7837')
plot $d1 using 1:2:(0.5):(0.5):3 with boxxyerror fs solid 1.0 noborder fc palette notitle, \
     $d1 using 1:2:(sprintf("%.0f", $3)) with labels font ',9' notitle
unset multiplot
set output
