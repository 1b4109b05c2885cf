package api

// Config is a config as the API shows it: the shape of a Secret, but its
// data is not secret: it is kept in the clear, and a read of one config
// may ask for it (?data). A task mounts a config at any absolute path.
type Config Secret

// Latest is the newest version (the zero version if there is none).
func (c *Config) Latest() SecretVersion { return (*Secret)(c).Latest() }
