"""`vidvpr report`: the dataset, the grid, recall, Bjøntegaard deltas, the Pareto front, prediction
strips and provenance in one self-contained HTML file. `html` holds the pure building blocks,
`inputs` finds and checks what goes in, `sections`/`results` write the sections, `build` the file."""
