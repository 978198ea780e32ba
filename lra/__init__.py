"""Long-Range Arena: data (readers, generators, prepare), Lightning modules and configs."""
