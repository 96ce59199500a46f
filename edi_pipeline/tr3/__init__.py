"""TR3 validation: the pyx12 reference walk and the compiled walk."""
