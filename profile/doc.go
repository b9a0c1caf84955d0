// Package profile turns the JSON a customer's app returns for a user into a
// Livefyre profile (livefyre-protocol.md §3): only documented fields, typed
// as documented, validated before anything is sent.
//
// A Mapper is built from `map <field> <source>` rules, where the source is a
// JSON pointer, a template of text, {id} and {/pointer}, or a literal. With
// no rules the documented fields found at the top of the app's JSON pass
// through, apart from those that grant rights or group membership
// (moderator, tags, display_rules): only a rule sets those.
//
// The package is the one statement of Livefyre's profile schema: field
// names, types and limits (MaxDisplayName, MaxWebsites, MaxTagLen,
// MaxPullBody). Map and Validate shape and check what the plugin sends;
// CheckPulled reads a pull answer the way Livefyre does, for doctor and for
// the emulator in livefyretest. The package knows nothing of HTTP or Caddy,
// and it does not talk to Livefyre; it only shapes and checks documents.
package profile
