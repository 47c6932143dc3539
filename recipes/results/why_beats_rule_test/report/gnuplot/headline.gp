# The pre-registered measures per recipe at the final checkpoint: mean over seeds, 95% intervals (right action in distribution; right action on the test harm types).
# Written by `ethos report`; re-render from the report directory: gnuplot gnuplot/headline.gp
set datafile missing 'NaN'
$d0 << EOD
-0.2 11.3778 7.78801 15.1294
0.8 70.3111 46.8912 85.8349
1.8 92.6667 88.2277 95.8563
2.8 17.9778 10.6969 25.5875
3.8 64.5333 58.2952 69.9364
4.8 34.8444 25.6778 42.8913
5.8 31.1111 22.3741 43.0623
6.8 10.7778 8.01832 13.7657
7.8 38.1778 30.5378 47.5879
8.8 32.6667 23.9329 41.5712
9.8 67.8444 44.4557 83.7334
10.8 52.8667 44.324 59.7409
11.8 18.3333 15 22.8959
EOD
$d1 << EOD
0.2 9.82222 7.19302 12.4524
1.2 1.95556 1.04368 2.95783
2.2 10.2667 5.45097 15.0644
3.2 3.95556 2.58515 5.32796
4.2 16.9556 12.8058 20.6616
5.2 1.46667 0.813008 2.31653
6.2 5.42222 3.09797 8.21811
7.2 5.24444 4.13926 6.59912
8.2 7.02222 4.56244 9.62245
9.2 2.11111 0.883521 3.51415
10.2 1.37778 0.693793 2.20272
11.2 9 5.87064 12.9567
12.2 1.95556 0.928191 2.91169
EOD
set terminal pngcairo size 1630,620 noenhanced font 'DejaVu Sans,11'
set output 'headline.png'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set key below horizontal
set title 'Pre-registered measures, final checkpoint'
set xtics rotate by -30 left
set ylabel 'rate (%)'
set yrange [0:100]
set pointintervalbox 0
set xrange [-0.6:12.6]
set boxwidth 0.38 absolute
set xtics ('r0-world=linked' 0, 'r1-world=linked' 1, 'r1-world=unlinked' 2, 'r1_dpo-world=linked' 3, 'r2-world=linked' 4, 'r2-world=unlinked' 5, 'r2_dpo-world=linked' 6, 'r3-world=linked' 7, 'r4-world=linked' 8, 'r5-world=linked' 9, 'r6-world=linked' 10, 'c1-world=linked' 11, 'c2-world=linked' 12)
plot $d0 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#0072B2' title 'right action in distribution', \
     $d0 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d1 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#D55E00' title 'right action on the test harm types', \
     $d1 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle
set output
reset
set terminal svg size 1630,620 noenhanced font 'DejaVu Sans,11' background rgb 'white'
set output 'headline.svg'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set key below horizontal
set title 'Pre-registered measures, final checkpoint'
set xtics rotate by -30 left
set ylabel 'rate (%)'
set yrange [0:100]
set pointintervalbox 0
set xrange [-0.6:12.6]
set boxwidth 0.38 absolute
set xtics ('r0-world=linked' 0, 'r1-world=linked' 1, 'r1-world=unlinked' 2, 'r1_dpo-world=linked' 3, 'r2-world=linked' 4, 'r2-world=unlinked' 5, 'r2_dpo-world=linked' 6, 'r3-world=linked' 7, 'r4-world=linked' 8, 'r5-world=linked' 9, 'r6-world=linked' 10, 'c1-world=linked' 11, 'c2-world=linked' 12)
plot $d0 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#0072B2' title 'right action in distribution', \
     $d0 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
     $d1 using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb '#D55E00' title 'right action on the test harm types', \
     $d1 using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle
set output
