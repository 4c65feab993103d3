"""`python -m credit_scoring` runs the same Typer CLI as the `credit-scoring` command."""

from credit_scoring.cli import app

if __name__ == "__main__":
    app(prog_name="credit-scoring")
