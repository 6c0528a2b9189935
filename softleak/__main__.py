from softleak.cli import main

# The guard matters: Dask's local workers start with multiprocessing's "spawn", which imports the
# parent's __main__ module in every worker (as __mp_main__); unguarded, each would rerun the command.
if __name__ == "__main__":
    raise SystemExit(main())
