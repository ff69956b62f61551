# walkthrough.gdb - 07-completion-port: a guided tour. Start with: make gdb M=07
# (ARGS="-t 2" for two workers; the default is one per CPU.) The stops are
# functions that stay real functions in the optimized sanitizer builds too;
# the README's gdb tour adds the completion handlers (on_recv_complete...),
# which those builds inline. "if c->handle.fd != -1": only conns with a
# client, not the ones reserved for accepts that shutdown cancels.
set pagination off
set print pretty on
handle SIGPIPE nostop noprint pass
handle SIGTERM nostop print pass
handle SIGINT nostop print pass
# A new thread is news the first time only.
set print thread-events off

break cport_associate
commands
  silent
  echo \n[tour 1] cport_associate: CreateIoCompletionPort(socket, port, key) - the listener\n
  echo at start-up, then each accepted client, on the worker that took its accept\n
  print fd
  print key
  echo The handle's generation goes up by one: a new life for this per-socket context\n
  print *handle
  info threads
  if $tour_batch
    continue
  end
end

break conn_post
commands
  silent
  echo \n[tour 2] conn_post: post this conn's next operation (WSARecv or WSASend)\n
  print op
  echo refs: operations in flight on it, plus the completion being handled now\n
  print c->refs
  print c->handle
  echo The bytes waiting to be echoed (a send sends them, a recv appends):\n
  print c->echo
  if $tour_batch
    continue
  end
end

break conn_release if c->handle.fd != -1
commands
  silent
  echo \n[tour 3] conn_release: a handler is done with its completion; drop its reference\n
  print c->refs
  echo Each thread: this worker, the others in cport_get (one in poll, the rest on cq_lock):\n
  thread apply all bt 4
  if $tour_batch
    continue
  end
end

break conn_done if c->handle.fd != -1
commands
  silent
  echo \n[tour 4] conn_done: the conn's last operation ended (error 0: the client left)\n
  print what
  print error
  print c->peer
  echo When refs reaches 0 in conn_release, conn_close closes the socket, reuses c\n
  print c->refs
  if $tour_batch
    continue
  end
end

break cport_post_message
commands
  silent
  echo \n[tour 5] cport_post_message: after SIGTERM, main has waited for every completion\n
  echo and now posts one quit message per worker (PostQueuedCompletionStatus)\n
  print message
  print port->in_flight
  info threads
  if $tour_batch
    continue
  end
end

echo Tour loaded. Type "run", then connect: nc 127.0.0.1 9007\n
