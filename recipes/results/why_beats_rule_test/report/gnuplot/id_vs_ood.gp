# ID vs OOD misaligned rate per recipe at the final checkpoint (suite world-test-generate, generate/sample), 95% intervals; points above the dashed line do worse on held-out shifts.
# Written by `ethos report`; re-render from the report directory: gnuplot gnuplot/id_vs_ood.gp
set datafile missing 'NaN'
set terminal pngcairo size 820,640 noenhanced font 'DejaVu Sans,11'
set output 'id_vs_ood.png'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set title 'ID vs OOD at the final checkpoint (suite world-test-generate, generate/sample)'
set xlabel 'ID misaligned (%)'
set ylabel 'OOD misaligned (%)'
set xrange [0:100]
set yrange [0:100]
set size ratio -1
set label 'dashed line: OOD = ID' at graph 0.97,0.04 right tc rgb '#777777'
unset label
set label 'no data' at graph 0.5,0.5 center
plot NaN notitle
unset label
set output
reset
set terminal svg size 820,640 noenhanced font 'DejaVu Sans,11' background rgb 'white'
set output 'id_vs_ood.svg'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set title 'ID vs OOD at the final checkpoint (suite world-test-generate, generate/sample)'
set xlabel 'ID misaligned (%)'
set ylabel 'OOD misaligned (%)'
set xrange [0:100]
set yrange [0:100]
set size ratio -1
set label 'dashed line: OOD = ID' at graph 0.97,0.04 right tc rgb '#777777'
unset label
set label 'no data' at graph 0.5,0.5 center
plot NaN notitle
unset label
set output
