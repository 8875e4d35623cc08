// Package ext recreates Traefik's nested module github.com/traefik/traefik/dynamic/ext,
// which its go.mod replaces with ./pkg/config/dynamic/ext but which the module zip on the Go
// module proxy does not contain. Traefik's code embeds ext.HTTP in dynamic.HTTPConfiguration
// and ext.Router in dynamic.Router (pkg/config/dynamic/http_config.go); both are empty
// upstream, so they add no configuration field. Copied in by e2e/gateway/build.sh.
package ext

// HTTP is embedded in dynamic.HTTPConfiguration.
type HTTP struct{}

// Router is embedded in dynamic.Router.
type Router struct{}

// RouterIng is the Ingress-annotation form of Router.
type RouterIng struct{}

// ToRouter converts the annotation form into a Router.
func (r RouterIng) ToRouter() Router { return Router{} }
