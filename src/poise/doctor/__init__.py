"""`poise doctor`: test a balanced service as a client would, and a configuration for the
classic mistakes, and say what is wrong and what to do about it."""
