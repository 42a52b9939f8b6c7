# One small file per board: pin map, which drivers, and constants.
