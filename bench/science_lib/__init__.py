"""The science report (bench/science.py is its command line), in three layers that depend one way:

`grid`: what a sweep runs (scenarios, the full / quick / paper grids' sizes);
`jobs`: one scenario x one seed, measured for every section, returning a typed `record.JobRecord`;
`aggregate`: values across seeds over those records (`Runs`, mean ± sd, SalUn's avg gap, rank correlation);
`report` and `figures`: the sections, each paper's claim computed from the aggregated numbers, the figures.

Only `jobs` trains or measures anything; `--render-only` reads records back from science.json and runs the rest.
"""
