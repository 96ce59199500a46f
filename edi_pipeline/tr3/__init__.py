"""TR3 validation: one validator protocol (protocol.py), the pyx12 reference walk and the compiled walk."""
