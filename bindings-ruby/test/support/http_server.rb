# frozen_string_literal: true

require "socket"

# A tiny HTTP/1.1 server for the Api mixin's tests (Ruby 3.1 ships no WEBrick):
# each request is answered by the block, which gets {method, path, query,
# headers, body} and returns [status, headers, body] (or :hang to never answer).
class TestHTTPServer
  attr_reader :port, :requests

  def initialize(&responder)
    @responder = responder
    @server = TCPServer.new("127.0.0.1", 0)
    @port = @server.addr[1]
    @requests = Thread::Queue.new
    @clients = []
    @thread = Thread.new { serve }
  end

  def url(path = "")
    "http://127.0.0.1:#{@port}#{path}"
  end

  def close
    @thread.kill
    @server.close
    @clients.each { |c| c.close unless c.closed? }
  end

  private

  def serve
    loop do
      client = @server.accept
      @clients << client
      Thread.new(client) { |c| handle(c) }
    end
  rescue IOError, Errno::EBADF
    nil
  end

  def handle(client)
    line = client.gets or return
    method, target, = line.split(" ", 3)
    path, query = target.split("?", 2)
    headers = {}
    while (h = client.gets) && h != "\r\n"
      k, v = h.split(":", 2)
      headers[k.strip.downcase] = v.strip
    end
    body = headers["content-length"] ? client.read(Integer(headers["content-length"])) : ""
    request = { method: method, path: path, query: query, headers: headers, body: body }
    @requests << request
    status, response_headers, response_body = @responder.call(request)
    return sleep if status == :hang

    response_body = response_body.to_s
    client.write("HTTP/1.1 #{status} X\r\n")
    { "Content-Length" => response_body.bytesize, "Connection" => "close" }.merge(response_headers || {})
                                                                            .each { |k, v| client.write("#{k}: #{v}\r\n") }
    client.write("\r\n#{response_body}")
  ensure
    client.close unless client.closed?
  end
end
