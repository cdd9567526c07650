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

func BenchmarkRunFunction(b *testing.B) {
	f := New(logging.NewNopLogger())
	for name, r := range benchRequests {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rsp, _ := f.RunFunction(b.Context(), r)
				if len(rsp.GetResults()) > 0 {
					b.Fatal(rsp.GetResults())
				}
			}
		})
		b.Run(name+"/noop", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = noop{}.RunFunction(b.Context(), r)
			}
		})
	}
}

// BenchmarkRunFunctionGRPC calls the function the way Crossplane does: over
// a gRPC connection, here on loopback without TLS.
func BenchmarkRunFunctionGRPC(b *testing.B) {
	for _, srv := range []struct {
		name string
		fn   fnv1.FunctionRunnerServiceServer
	}{{"dbplane", New(logging.NewNopLogger())}, {"noop", noop{}}} {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		s := grpc.NewServer()
		fnv1.RegisterFunctionRunnerServiceServer(s, srv.fn)
		go func() { _ = s.Serve(lis) }()
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		c := fnv1.NewFunctionRunnerServiceClient(conn)
		for name, r := range benchRequests {
			b.Run(name+"/"+srv.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.RunFunction(b.Context(), r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		_ = conn.Close()
		s.Stop()
	}
}
