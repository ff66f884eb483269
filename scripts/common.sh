# Shared by the demo and bench scripts: how to call mpirun here.
MPIRUN=(mpirun --oversubscribe --bind-to none)
if [ "$(id -u)" = 0 ]; then MPIRUN+=(--allow-run-as-root); fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
