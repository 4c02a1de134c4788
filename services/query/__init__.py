"""Query: live scorecards, earnings, relationships and leaderboards from a replica of the processor's measures."""
