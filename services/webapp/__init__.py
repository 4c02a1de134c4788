"""The web app for the people who are paid and those who pay them: static pages on the HTTP API of SPEC §6."""
