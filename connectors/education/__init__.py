"""Education: Common Transfer File (CTF) import and a minimised push to a school or virtual school."""
