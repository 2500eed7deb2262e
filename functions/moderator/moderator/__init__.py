"""The moderator Lambda: toxicity score and verdict for a transformed page's text."""
