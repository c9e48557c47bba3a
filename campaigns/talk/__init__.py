"""Makers and backers talk: private conversations (questions, replies, the maker's messages to many backers) and
public comments on a campaign and its updates."""
