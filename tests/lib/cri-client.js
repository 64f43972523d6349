#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
//
// A small CRI (Kubernetes Container Runtime Interface, runtime.v1) client for
// the end-to-end tests: it stands in for kubelet against containerd's CRI
// plugin. It needs npm's @grpc/grpc-js and @grpc/proto-loader and the CRI
// api.proto, all installed by scripts/setup.sh.
//
//   node cri-client.js --endpoint unix:///run/kyb-test/x/containerd.sock CMD ARGS...
//
// Commands (pod and container configs are JSON files with the CRI field names,
// e.g. {"metadata":{"name":"p","uid":"u1","namespace":"default"},
// "linux":{"security_context":{"namespace_options":{"network":"NODE"}}}}):
//   version                               VersionResponse (JSON)
//   status                                runtime conditions (JSON)
//   runp POD.json [HANDLER]               prints the pod sandbox id
//   create POD_ID CTR.json POD.json       prints the container id
//   start ID | stop ID [TIMEOUT_S] | rm ID
//   stopp POD_ID | rmp POD_ID
//   runpod POD.json HANDLER CTR.json...   RunPodSandbox, then CreateContainer and
//                                         StartContainer of each in order; prints
//                                         "pod ID", then "NAME ID" per container
//                                         as it is created (a failure: the step on
//                                         stderr, exit 1); HANDLER may be ""
//   createstart POD_ID POD.json CTR.json...
//                                         CreateContainer and StartContainer of
//                                         each in order in the existing sandbox,
//                                         timed inside this one process as
//                                         kubelet, a long-lived client, would
//                                         see it; prints "NAME ID" per container
//                                         as it is created, then "MS CREATE_MS
//                                         START_MS": from the first
//                                         CreateContainer request to the last
//                                         StartContainer's return (later, should
//                                         a ContainerStatus then not say all are
//                                         RUNNING: until it does), and the sums
//                                         of the two calls, in ms (hrtime). The
//                                         connection is made (Version) before
//                                         the clock starts.
//   rmpod POD_ID                          StopPodSandbox, then RemovePodSandbox
//   states ID...                          "ID STATE" per container
//   ps [POD_ID]                           containers (JSON array)
//   pods                                  pod sandboxes (JSON array)
//   inspect ID                            ContainerStatusResponse (JSON, verbose)
//   inspectp POD_ID                       PodSandboxStatusResponse (JSON, verbose)
//   exec ID CMD...                        ExecSync: prints stdout/stderr, exits with its code
//   stats ID                              ContainerStats (JSON: cpu, memory, writable layer)
//   update ID RES.json                    UpdateContainerResources (LinuxContainerResources JSON)
//   checkpoint ID PATH [TIMEOUT_S]        CheckpointContainer (archive at PATH)
//   images                                ListImages (JSON)
//   pull IMAGE                            PullImage (no credentials): prints the image ref
//
// `create` sets linux.security_context.namespace_options.pid to CONTAINER when
// the config does not say otherwise: kubelet's default, and what CRIU needs
// to restore a container (it must create the PID namespace itself).
// Options: --endpoint URL (or $CRI_ENDPOINT), --proto PATH (or $KYB_CRI_PROTO,
// default /opt/kybernate/cri-api/api.proto), --modules DIR (or
// $KYB_NODE_MODULES, default /opt/kybernate/node/node_modules), --timeout S (60).
'use strict';

const fs = require('fs');
const path = require('path');

const MAX_JSON = 1 << 20;

function die(msg, code) {
	process.stderr.write(`cri-client: ${msg}\n`);
	process.exit(code === undefined ? 1 : code);
}

function usage() {
	const src = fs.readFileSync(__filename, 'utf8').split('\n');
	const out = [];
	for (const l of src.slice(3)) {
		if (!l.startsWith('//')) break;
		out.push(l.replace(/^\/\/ ?/, ''));
	}
	process.stdout.write(out.join('\n') + '\n');
}

let endpoint = process.env.CRI_ENDPOINT || '';
let protoPath = process.env.KYB_CRI_PROTO || '/opt/kybernate/cri-api/api.proto';
let modules = process.env.KYB_NODE_MODULES || '/opt/kybernate/node/node_modules';
let timeoutS = 60;
const args = [];
{
	const a = process.argv.slice(2);
	for (let i = 0; i < a.length; i++) {
		const v = a[i];
		if (args.length === 0 && v.startsWith('--')) {
			const next = () => {
				if (i + 1 >= a.length) die(`${v} needs a value`, 2);
				return a[++i];
			};
			if (v === '--endpoint') endpoint = next();
			else if (v === '--proto') protoPath = next();
			else if (v === '--modules') modules = next();
			else if (v === '--timeout') timeoutS = Number(next());
			else if (v === '--help' || v === '-h') {
				usage();
				process.exit(0);
			} else die(`unknown option ${v}`, 2);
		} else args.push(v);
	}
}
if (args.length === 0) {
	usage();
	process.exit(2);
}
if (!endpoint) die('no --endpoint (e.g. unix:///run/containerd/containerd.sock)', 2);
if (!endpoint.includes('://')) endpoint = 'unix://' + endpoint;
if (!(timeoutS > 0)) die('bad --timeout', 2);

function need(mod) {
	try {
		return require(path.join(modules, mod));
	} catch (e) {
		die(`cannot load ${mod} from ${modules} (run scripts/setup.sh): ${e.message}`, 77);
	}
}
const grpc = need('@grpc/grpc-js');
const protoLoader = need('@grpc/proto-loader');
if (!fs.existsSync(protoPath)) die(`no CRI api.proto at ${protoPath} (run scripts/setup.sh)`, 77);

const def = protoLoader.loadSync(protoPath, {
	keepCase: true,
	longs: String,
	enums: String,
	defaults: true,
	oneofs: true,
});
const v1 = grpc.loadPackageDefinition(def).runtime.v1;
const rt = new v1.RuntimeService(endpoint, grpc.credentials.createInsecure());
const img = new v1.ImageService(endpoint, grpc.credentials.createInsecure());

function call(client, method, req, tmo) {
	return new Promise((resolve, reject) => {
		const deadline = new Date(Date.now() + (tmo || timeoutS) * 1000);
		client[method](req, { deadline }, (err, res) => {
			if (err) {
				const e = new Error(`${method}: ${err.details || err.message}`);
				e.grpcCode = err.code;
				reject(e);
			} else resolve(res);
		});
	});
}

function readJson(file) {
	let st;
	try {
		st = fs.statSync(file);
	} catch (e) {
		die(`${file}: ${e.message}`, 2);
	}
	if (!st.isFile() || st.size > MAX_JSON) die(`${file}: not a regular file of at most ${MAX_JSON} bytes`, 2);
	try {
		return JSON.parse(fs.readFileSync(file, 'utf8'));
	} catch (e) {
		die(`${file}: bad JSON: ${e.message}`, 2);
	}
}

// A container config as kubelet sends it: a PID namespace of its own
// unless the config says otherwise.
function ctrConfig(ctr) {
	ctr.linux = ctr.linux || {};
	ctr.linux.security_context = ctr.linux.security_context || {};
	const no = (ctr.linux.security_context.namespace_options = ctr.linux.security_context.namespace_options || {});
	if (no.pid === undefined) no.pid = 'CONTAINER';
	return ctr;
}

function arg(i, what) {
	if (args.length <= i) die(`${args[0]}: missing ${what}`, 2);
	return args[i];
}

// info maps in verbose status hold JSON strings: decode them for readability.
function decodeInfo(res) {
	if (res && res.info) {
		for (const k of Object.keys(res.info)) {
			try {
				res.info[k] = JSON.parse(res.info[k]);
			} catch (e) {
				/* keep the string */
			}
		}
	}
	return res;
}

const print = (o) => process.stdout.write(JSON.stringify(o, null, 2) + '\n');

async function main() {
	const cmd = args[0];
	switch (cmd) {
	case 'version':
		print(await call(rt, 'Version', { version: 'v1' }));
		break;
	case 'status':
		print(await call(rt, 'Status', { verbose: false }));
		break;
	case 'runp': {
		const pod = readJson(arg(1, 'POD.json'));
		const res = await call(rt, 'RunPodSandbox', { config: pod, runtime_handler: args[2] || '' });
		process.stdout.write(res.pod_sandbox_id + '\n');
		break;
	}
	case 'create': {
		const podId = arg(1, 'POD_ID');
		const ctr = readJson(arg(2, 'CTR.json'));
		const pod = readJson(arg(3, 'POD.json'));
		ctrConfig(ctr);
		const res = await call(rt, 'CreateContainer', {
			pod_sandbox_id: podId,
			config: ctr,
			sandbox_config: pod,
		});
		process.stdout.write(res.container_id + '\n');
		break;
	}
	case 'start':
		await call(rt, 'StartContainer', { container_id: arg(1, 'ID') });
		break;
	case 'stop': {
		const t = Number(args[2] || 10);
		await call(rt, 'StopContainer', { container_id: arg(1, 'ID'), timeout: t }, timeoutS + t);
		break;
	}
	case 'rm':
		await call(rt, 'RemoveContainer', { container_id: arg(1, 'ID') });
		break;
	case 'stopp':
		await call(rt, 'StopPodSandbox', { pod_sandbox_id: arg(1, 'POD_ID') });
		break;
	case 'rmp':
		await call(rt, 'RemovePodSandbox', { pod_sandbox_id: arg(1, 'POD_ID') });
		break;
	case 'runpod': {
		const pod = readJson(arg(1, 'POD.json'));
		arg(3, 'CTR.json');
		const ctrs = args.slice(3).map(readJson);
		const res = await call(rt, 'RunPodSandbox', { config: pod, runtime_handler: args[2] || '' });
		const podId = res.pod_sandbox_id;
		process.stdout.write(`pod ${podId}\n`);
		for (const ctr of ctrs) {
			ctrConfig(ctr);
			const name = (ctr.metadata && ctr.metadata.name) || '';
			const c = await call(rt, 'CreateContainer', { pod_sandbox_id: podId, config: ctr, sandbox_config: pod });
			process.stdout.write(`${name} ${c.container_id}\n`);
			try {
				await call(rt, 'StartContainer', { container_id: c.container_id });
			} catch (e) {
				e.message = `${name}: ${e.message}`;
				throw e;
			}
		}
		break;
	}
	case 'createstart': {
		const podId = arg(1, 'POD_ID');
		const pod = readJson(arg(2, 'POD.json'));
		arg(3, 'CTR.json');
		const ctrs = args.slice(3).map((f) => ctrConfig(readJson(f)));
		// A long-lived client is connected already: connect before timing.
		await call(rt, 'Version', { version: 'v1' });
		const ids = [];
		let create = 0n;
		let start = 0n;
		const t0 = process.hrtime.bigint();
		for (const ctr of ctrs) {
			const name = (ctr.metadata && ctr.metadata.name) || '';
			const a = process.hrtime.bigint();
			const c = await call(rt, 'CreateContainer', { pod_sandbox_id: podId, config: ctr, sandbox_config: pod });
			const b = process.hrtime.bigint();
			process.stdout.write(`${name} ${c.container_id}\n`);
			ids.push(c.container_id);
			try {
				await call(rt, 'StartContainer', { container_id: c.container_id });
			} catch (e) {
				e.message = `${name}: ${e.message}`;
				throw e;
			}
			create += b - a;
			start += process.hrtime.bigint() - b;
		}
		// Should CRI not say RUNNING yet, the time runs on until it does.
		let t1 = process.hrtime.bigint();
		const until = Date.now() + timeoutS * 1000;
		for (let first = true; ; first = false) {
			const st = [];
			for (const id of ids)
				st.push((await call(rt, 'ContainerStatus', { container_id: id, verbose: false })).status);
			if (st.every((x) => x.state === 'CONTAINER_RUNNING')) {
				if (!first) t1 = process.hrtime.bigint();
				break;
			}
			if (Date.now() > until) {
				const why = st.map((x) => `${x.metadata.name} ${x.state} ${x.reason} ${x.message}`).join('; ');
				throw new Error(`not all RUNNING after ${timeoutS} s: ${why}`);
			}
			await new Promise((r) => setTimeout(r, 20));
		}
		const ms = (ns) => (Number(ns) / 1e6).toFixed(1);
		process.stdout.write(`${ms(t1 - t0)} ${ms(create)} ${ms(start)}\n`);
		break;
	}
	case 'rmpod':
		await call(rt, 'StopPodSandbox', { pod_sandbox_id: arg(1, 'POD_ID') });
		await call(rt, 'RemovePodSandbox', { pod_sandbox_id: args[1] });
		break;
	case 'states': {
		arg(1, 'ID');
		for (const id of args.slice(1)) {
			const res = await call(rt, 'ContainerStatus', { container_id: id, verbose: false });
			process.stdout.write(`${id} ${res.status.state}\n`);
		}
		break;
	}
	case 'ps': {
		const filter = args[1] ? { pod_sandbox_id: args[1] } : null;
		const res = await call(rt, 'ListContainers', filter ? { filter } : {});
		print(res.containers);
		break;
	}
	case 'pods':
		print((await call(rt, 'ListPodSandbox', {})).items);
		break;
	case 'inspect':
		print(decodeInfo(await call(rt, 'ContainerStatus', { container_id: arg(1, 'ID'), verbose: true })));
		break;
	case 'inspectp':
		print(decodeInfo(await call(rt, 'PodSandboxStatus', { pod_sandbox_id: arg(1, 'POD_ID'), verbose: true })));
		break;
	case 'exec': {
		const id = arg(1, 'ID');
		arg(2, 'CMD');
		const t = 30;
		const res = await call(rt, 'ExecSync', { container_id: id, cmd: args.slice(2), timeout: t }, timeoutS + t);
		process.stdout.write(Buffer.from(res.stdout || []));
		process.stderr.write(Buffer.from(res.stderr || []));
		process.exitCode = res.exit_code & 0xff;
		break;
	}
	case 'stats':
		print((await call(rt, 'ContainerStats', { container_id: arg(1, 'ID') })).stats);
		break;
	case 'update':
		await call(rt, 'UpdateContainerResources', { container_id: arg(1, 'ID'), linux: readJson(arg(2, 'RES.json')) });
		break;
	case 'checkpoint': {
		const t = Number(args[3] || 60);
		await call(rt, 'CheckpointContainer',
			{ container_id: arg(1, 'ID'), location: arg(2, 'PATH'), timeout: t }, timeoutS + t);
		break;
	}
	case 'images':
		print((await call(img, 'ListImages', {})).images);
		break;
	case 'pull': {
		const res = await call(img, 'PullImage', { image: { image: arg(1, 'IMAGE') } }, timeoutS);
		process.stdout.write(res.image_ref + '\n');
		break;
	}
	default:
		die(`unknown command '${cmd}' (try --help)`, 2);
	}
}

main().then(
	() => {
		rt.close();
		img.close();
	},
	(e) => die(e.message, 1)
);
