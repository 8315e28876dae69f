"""The application: one module per run (prune, train, sensitivity, unstructured, export, info), the demo, every
table (`render`) and figure (`plots`), and the typer CLI. The only layer that chains the others."""
