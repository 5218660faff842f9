"""The cloud's APIs as the workers call them: requests, signing, auth, answers."""
