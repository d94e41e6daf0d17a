// Command criserver is a CRI *test* server: it answers ListPodSandbox, PodSandboxStatus (verbose), ListContainers
// and ContainerStatus (verbose) over a unix socket, from a JSON state file that the test rewrites at will (read
// on every call). The verbose info has containerd's shape: info["info"] is JSON with "pid" and "runtimeSpec".
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type container struct {
	ID      string `json:"id"`
	Pid     int    `json:"pid"`
	Running bool   `json:"running"`
}

type sandbox struct {
	ID          string      `json:"id"`
	UID         string      `json:"uid"`
	Name        string      `json:"name"`
	Namespace   string      `json:"namespace"`
	Pid         int         `json:"pid"`   // 0: the verbose info has no pid (the daemon must fall back)
	Netns       string      `json:"netns"` // runtimeSpec network namespace path; empty: none given
	Ready       bool        `json:"ready"`
	HostNetwork bool        `json:"host_network"`
	Containers  []container `json:"containers"`
}

type state struct {
	Sandboxes []sandbox `json:"sandboxes"`
}

type server struct {
	runtime.UnimplementedRuntimeServiceServer
	statePath string
}

func (s *server) load() (state, error) {
	var st state
	data, err := os.ReadFile(s.statePath)
	if err != nil {
		return st, status.Errorf(codes.Unavailable, "state: %v", err)
	}
	return st, json.Unmarshal(data, &st)
}

func (s *server) Version(context.Context, *runtime.VersionRequest) (*runtime.VersionResponse, error) {
	return &runtime.VersionResponse{Version: "0.1.0", RuntimeName: "trinet-cri-test-server", RuntimeVersion: "0", RuntimeApiVersion: "v1"}, nil
}

func sandboxState(sb sandbox) runtime.PodSandboxState {
	if sb.Ready {
		return runtime.PodSandboxState_SANDBOX_READY
	}
	return runtime.PodSandboxState_SANDBOX_NOTREADY
}

func (s *server) ListPodSandbox(_ context.Context, req *runtime.ListPodSandboxRequest) (*runtime.ListPodSandboxResponse, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	resp := &runtime.ListPodSandboxResponse{}
	f := req.GetFilter()
	for _, sb := range st.Sandboxes {
		labels := map[string]string{"io.kubernetes.pod.uid": sb.UID, "io.kubernetes.pod.name": sb.Name, "io.kubernetes.pod.namespace": sb.Namespace}
		if f != nil {
			if f.Id != "" && f.Id != sb.ID {
				continue
			}
			if f.State != nil && f.State.State != sandboxState(sb) {
				continue
			}
			match := true
			for k, v := range f.LabelSelector {
				if labels[k] != v {
					match = false
				}
			}
			if !match {
				continue
			}
		}
		resp.Items = append(resp.Items, &runtime.PodSandbox{
			Id:       sb.ID,
			Metadata: &runtime.PodSandboxMetadata{Name: sb.Name, Uid: sb.UID, Namespace: sb.Namespace},
			State:    sandboxState(sb),
			Labels:   labels,
		})
	}
	return resp, nil
}

func find(st state, id string) (sandbox, bool) {
	for _, sb := range st.Sandboxes {
		if sb.ID == id {
			return sb, true
		}
	}
	return sandbox{}, false
}

func (s *server) PodSandboxStatus(_ context.Context, req *runtime.PodSandboxStatusRequest) (*runtime.PodSandboxStatusResponse, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	sb, ok := find(st, req.PodSandboxId)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "sandbox %q not found", req.PodSandboxId)
	}
	mode := runtime.NamespaceMode_POD
	if sb.HostNetwork {
		mode = runtime.NamespaceMode_NODE
	}
	resp := &runtime.PodSandboxStatusResponse{Status: &runtime.PodSandboxStatus{
		Id:       sb.ID,
		Metadata: &runtime.PodSandboxMetadata{Name: sb.Name, Uid: sb.UID, Namespace: sb.Namespace},
		State:    sandboxState(sb),
		Linux:    &runtime.LinuxPodSandboxStatus{Namespaces: &runtime.Namespace{Options: &runtime.NamespaceOption{Network: mode}}},
	}}
	if req.Verbose {
		info := map[string]any{}
		if sb.Pid > 0 {
			info["pid"] = sb.Pid
		}
		if sb.Netns != "" {
			info["runtimeSpec"] = map[string]any{"linux": map[string]any{"namespaces": []map[string]string{
				{"type": "pid"}, {"type": "network", "path": sb.Netns}}}}
		}
		data, _ := json.Marshal(info)
		resp.Info = map[string]string{"info": string(data)}
	}
	return resp, nil
}

func (s *server) ListContainers(_ context.Context, req *runtime.ListContainersRequest) (*runtime.ListContainersResponse, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	resp := &runtime.ListContainersResponse{}
	f := req.GetFilter()
	for _, sb := range st.Sandboxes {
		if f != nil && f.PodSandboxId != "" && f.PodSandboxId != sb.ID {
			continue
		}
		for _, c := range sb.Containers {
			state := runtime.ContainerState_CONTAINER_EXITED
			if c.Running {
				state = runtime.ContainerState_CONTAINER_RUNNING
			}
			if f != nil && f.State != nil && f.State.State != state {
				continue
			}
			resp.Containers = append(resp.Containers, &runtime.Container{Id: c.ID, PodSandboxId: sb.ID, State: state})
		}
	}
	return resp, nil
}

func (s *server) ContainerStatus(_ context.Context, req *runtime.ContainerStatusRequest) (*runtime.ContainerStatusResponse, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	for _, sb := range st.Sandboxes {
		for _, c := range sb.Containers {
			if c.ID != req.ContainerId {
				continue
			}
			state := runtime.ContainerState_CONTAINER_EXITED
			if c.Running {
				state = runtime.ContainerState_CONTAINER_RUNNING
			}
			resp := &runtime.ContainerStatusResponse{Status: &runtime.ContainerStatus{Id: c.ID, State: state}}
			if req.Verbose {
				data, _ := json.Marshal(map[string]any{"pid": c.Pid})
				resp.Info = map[string]string{"info": string(data)}
			}
			return resp, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "container %q not found", req.ContainerId)
}

func main() {
	listen := flag.String("listen", "", "unix socket path")
	statePath := flag.String("state", "", "JSON state file")
	flag.Parse()
	_ = os.Remove(*listen)
	lis, err := net.Listen("unix", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	runtime.RegisterRuntimeServiceServer(srv, &server{statePath: *statePath})
	log.Printf("listening on %s", *listen)
	log.Fatal(srv.Serve(lis))
}
