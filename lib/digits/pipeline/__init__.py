"""Pipeline: what `make` runs, through one entry point (`python -m digits.pipeline COMMAND`, digits.pipeline.main).

- `commandline`: make's command line, parsed once into `Options`; `make help` and the check before setup.
- `steps`: the steps in their one order, each doing only what the files on disk say is missing.
- `commands`: the other commands (runs, predict, sweep, Kaggle, cleaning, Lab, the served book).
- `notebooks`, `kernel`: notebooks run with papermill in one kernel for a command; the project's kernel.
- `workers`, `sweep`: runs trained by Dask workers, here or on a cluster; many runs in one command.
- `kaggle`: the round trip with the competition through the official `kaggle` command.
- `environment`, `cleaning`: what `make setup`, `make check` and `make clean` run with the system's python3 alone:
  the environment installed only when its lock changed; only what rendering wrote removed.
- `serving`: the rendered book served on 127.0.0.1, nothing outside it.
- `labcontents`: the files JupyterLab opens (`make lab`), without its false alarms; loaded by the Lab server alone.

May import everything below it; nothing imports it but `python -m digits.pipeline` (and the kernel and the Lab
server it starts).
"""
