"""Batch and classroom tooling: run notebooks with papermill (runner), parameter checks (params), sweeps on Dask
(sweep, cluster), reports, student copies and nbgrader export (classroom, nbgrader_export), and the command line
(cli). The lessons and the training engine never import from here; the package root re-exports
`params.check_values`, which every notebook calls on its parameters."""
