// One version for every binary; the build could stamp it, the package version is the default.
export const VERSION = 'v0.1.0';
