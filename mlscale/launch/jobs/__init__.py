"""Job scripts and scaling sweeps: system descriptions (systems/*.yaml), schedulers
(SLURM, PBS, Cobalt, none), rank launchers (srun, mpiexec, aprun, PALS, mpirun),
jinja2 templates, and the sweep manifest that `mlscale report` reads."""
