"""Methods: each is a loss, a network choice and a posterior builder over the shared loop."""
