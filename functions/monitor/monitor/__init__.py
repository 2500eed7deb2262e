"""The monitor Lambda: run the pipeline over the watchlist on a schedule, alert on transitions."""
