"""Code tables, payer profiles and the CMS NCCI tables, with their data files."""
