"""What the companion sends on its own: due rows claimed, sent and recorded by one job."""
