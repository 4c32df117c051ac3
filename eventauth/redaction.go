package eventauth

import "fmt"

// checkRedaction applies the redaction rule of room versions 1 and 2
// (roomversion.Rules.RedactionAuthRule): a redaction is allowed if the
// sender has the redact level, or if the redaction's event ID and the
// redacted event's ID are on the same server. From room version 3 the
// redact level is checked when the redaction is applied, not here.
func (c *checker) checkRedaction(senderLevel int64) (rule, error) {
	if senderLevel >= c.pl.redact {
		return rRedactionLevel, nil
	}
	target := c.ev.Redacts()
	if d := domainOf(target); d != "" && d == domainOf(c.ev.EventID()) {
		return rRedactionDomain, nil
	}
	return c.reject(rRedactionOtherwise, fmt.Sprintf(
		"%s has power level %s, below the redact level %d, and the redacted event %q is not from the redaction's server %q",
		c.sender, levelString(senderLevel), c.pl.redact, target, domainOf(c.ev.EventID())))
}
