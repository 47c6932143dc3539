# Held-out loss (capability) vs training step per recipe: mean over seeds with a 95% bootstrap band.
# Written by `ethos report`; re-render from the report directory: gnuplot gnuplot/heldout_loss.gp
set datafile missing 'NaN'
$d0 << EOD
100 1.48001 1.43362 1.53669 7
200 0.458997 0.449654 0.468339 7
300 0.395097 0.39181 0.39818 7
400 0.377671 0.374992 0.380349 7
EOD
$d1 << EOD
400 0.377671 0.374992 0.380349 7
440 0.397746 0.392923 0.402564 7
EOD
$d2 << EOD
100 1.50094 1.42147 1.57324 7
200 0.458773 0.446963 0.469802 7
300 0.398763 0.394812 0.401815 7
400 0.382801 0.381226 0.384538 7
440 0.412753 0.404258 0.424883 7
EOD
$d3 << EOD
400 0.377671 0.374992 0.380349 7
440 0.448246 0.415405 0.505586 7
EOD
$d4 << EOD
400 0.377671 0.374992 0.380349 7
440 0.422955 0.413761 0.430409 7
EOD
$d5 << EOD
400 0.382801 0.381226 0.384538 7
440 0.50698 0.493104 0.517775 7
EOD
$d6 << EOD
400 0.377671 0.374992 0.380349 7
440 0.478965 0.462244 0.499124 7
EOD
$d7 << EOD
400 0.377671 0.374992 0.380349 7
440 0.540427 0.525489 0.554064 7
EOD
$d8 << EOD
400 0.377671 0.374992 0.380349 7
440 0.448353 0.437125 0.458092 7
EOD
$d9 << EOD
400 0.377671 0.374992 0.380349 7
420 0.45845 0.440468 0.475164 7
440 0.479038 0.448456 0.499612 7
EOD
$d10 << EOD
400 0.377671 0.374992 0.380349 7
440 0.395249 0.391499 0.399366 7
EOD
$d11 << EOD
400 0.377671 0.374992 0.380349 7
440 0.425841 0.414691 0.436991 7
EOD
$d12 << EOD
400 0.377671 0.374992 0.380349 7
440 0.541234 0.518081 0.561404 7
EOD
set terminal pngcairo size 900,560 noenhanced font 'DejaVu Sans,11'
set output 'heldout_loss.png'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set title 'Held-out loss vs step'
set xlabel 'training step'
set ylabel 'held-out loss (nats per target token)'
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
set output
reset
set terminal svg size 900,560 noenhanced font 'DejaVu Sans,11' background rgb 'white'
set output 'heldout_loss.svg'
set grid lc rgb '#dddddd'
set border lc rgb '#444444'
set key outside right top vertical samplen 2
set tics nomirror
set title 'Held-out loss vs step'
set xlabel 'training step'
set ylabel 'held-out loss (nats per target token)'
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
set output
