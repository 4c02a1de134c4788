"""The stream processor: the inbound topics folded into Faust tables and published to `measures`."""
