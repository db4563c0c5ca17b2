"""HadaSmileNet study: smile landmark data, D-Marker, MeshSmileNet backbone, fusions, engine."""
