"""`python -m services.processor`: run the stream processor with settings from the environment."""

from services.processor.app import run_worker
from services.settings import Settings

if __name__ == "__main__":
    run_worker(Settings())
