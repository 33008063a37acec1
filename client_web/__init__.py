"""The driver's page and the operator page (HTML, CSS, ES modules), shipped as package data
beside the CSMS that serves them (:mod:`csms.web`)."""
