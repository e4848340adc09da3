// Placeholder translation unit for a component whose sources are all headers.
