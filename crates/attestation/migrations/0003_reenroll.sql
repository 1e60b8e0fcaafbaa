-- An administrator may let a host name be enrolled again with another TPM (a replaced
-- motherboard or TPM) until this time (Unix ms); its policies carry over.
ALTER TABLE hosts ADD COLUMN reenroll_until BIGINT;
