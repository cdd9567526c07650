package fn

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/response"
)

// noop answers a request the cheapest way a function can: the floor any
// function pays for the same request.
type noop struct {
	fnv1.UnimplementedFunctionRunnerServiceServer
}

func (noop) RunFunction(_ context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	return response.To(req, response.DefaultTTL), nil
}

// echo answers with a response computed beforehand: the floor for sending
// the same answer we send, with no work to compute it.
type echo struct {
	fnv1.UnimplementedFunctionRunnerServiceServer
	rsp *fnv1.RunFunctionResponse
}

func (e echo) RunFunction(context.Context, *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	return e.rsp, nil
}

// steadyState is a reconcile of a Ready Database: everything observed.
func steadyState(spec string) *fnv1.RunFunctionRequest {
	return req(xr("orders", spec), map[string]string{
		"secret": secretJSON("pw"), "configmap": existsJSON, "service-headless": existsJSON, "service": existsJSON,
		"statefulset": stsJSON(2, 2, "20Gi"), "pdb": existsJSON, "backup-pvc": pvcJSON, "backup-cronjob": cronJobJSON,
	})
}

var benchRequests = map[string]*fnv1.RunFunctionRequest{
	"postgresql-production": steadyState(pgProd),
	"mysql-production":      steadyState(myProd),
}

func servers(b *testing.B, r *fnv1.RunFunctionRequest) map[string]fnv1.FunctionRunnerServiceServer {
	b.Helper()
	rsp, err := New(logging.NewNopLogger()).RunFunction(b.Context(), r)
	if err != nil || len(rsp.GetResults()) > 0 {
		b.Fatal(err, rsp.GetResults())
	}
	return map[string]fnv1.FunctionRunnerServiceServer{
		"dbplane":          New(logging.NewNopLogger()),
		"dbplane-uncached": New(logging.NewNopLogger(), WithoutCache()),
		"floor-noop":       noop{},
		"floor-echo":       echo{rsp: rsp},
	}
}

// BenchmarkRunFunction calls RunFunction in process.
func BenchmarkRunFunction(b *testing.B) {
	for name, r := range benchRequests {
		for sname, s := range servers(b, r) {
			b.Run(name+"/"+sname, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.RunFunction(b.Context(), r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRunFunctionGRPC calls the function the way Crossplane does: over
// a gRPC connection, here on loopback without TLS. Client and server share
// the process, so both sides' marshalling counts.
func BenchmarkRunFunctionGRPC(b *testing.B) {
	for name, r := range benchRequests {
		for sname, s := range servers(b, r) {
			lis, err := (&net.ListenConfig{}).Listen(b.Context(), "tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := grpc.NewServer()
			fnv1.RegisterFunctionRunnerServiceServer(srv, s)
			go func() { _ = srv.Serve(lis) }()
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			c := fnv1.NewFunctionRunnerServiceClient(conn)
			b.Run(name+"/"+sname, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.RunFunction(b.Context(), r); err != nil {
						b.Fatal(err)
					}
				}
			})
			_ = conn.Close()
			srv.Stop()
		}
	}
}
