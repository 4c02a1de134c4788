"""`convergence up --demo`: simulated source systems posting events, for the web app to show live."""
