"""The ground floor: issues and positions, values, safe names and text, atomic files."""
