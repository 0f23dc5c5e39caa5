package tensor

// ReadNPZFrom reads an archive from memory, for the fuzz target.
var ReadNPZFrom = readNPZ
