# make lab  — a 3-host, 2-pods-per-host vxlan cluster in network namespaces, with a ping matrix
# make test — every unit and integration test (needs root: namespaces, etcd, iptables)
# Both install what they need first (Debian packages, npm ci, the build).

APT_PACKAGES := etcd-server etcd-client iptables nftables iproute2 iputils-ping containernetworking-plugins iperf3 tcpdump curl openssl procps make g++ python3 containerd runc busybox-static mount
HOSTS ?= 3
PODS ?= 2
BACKEND ?= vxlan
# More `lab up` options, e.g. LAB_ARGS="--ipv6 --nftables" or "--dual-stack --kube".
LAB_ARGS ?=

.PHONY: deps build lab lab-down test test-unit clean

deps: .deps-apt node_modules/.package-lock.json

.PHONY: .deps-apt
.deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

build: deps
	npm run build

lab: build
	node dist/flannelctl.cjs lab up --hosts $(HOSTS) --pods-per-host $(PODS) --backend $(BACKEND) $(LAB_ARGS)

lab-down:
	node dist/flannelctl.cjs lab down

test: build
	npx tsc --noEmit -p .
	npm run lint
	npm test

test-unit: deps
	npm run test:unit

clean:
	rm -rf dist build
