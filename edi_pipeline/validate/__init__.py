"""The validate stage: TR3 and our own checks, answered with 999s and TA1s."""
