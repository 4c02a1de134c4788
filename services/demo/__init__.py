"""`convergence up --demo`: simulated source systems and a live dashboard."""
