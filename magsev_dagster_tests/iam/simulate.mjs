// Evaluates IAM requests against one identity policy with @cloud-copilot/iam-simulate.
// stdin: {"policy": {...}, "principal": "arn:...", "account": "123456789012",
//         "requests": [{"action": "glue:GetTable", "resource": "arn:...", "context": {"k": "v"}}]}
// stdout: one answer per request: {"result": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied" | "Error",
//         "statements": [Sids that allowed it], "error": validation errors (a wrong ARN type for the action...)}
import { runSimulation } from '@cloud-copilot/iam-simulate'

const input = JSON.parse(await new Promise((resolve) => {
  let text = ''
  process.stdin.on('data', (chunk) => { text += chunk })
  process.stdin.on('end', () => resolve(text))
}))

const answers = []
for (const request of input.requests) {
  const response = await runSimulation({
    identityPolicies: [{ name: 'magsev-runs', policy: input.policy }],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    request: {
      principal: input.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: input.account },
      contextVariables: request.context || {},
    },
  }, {})
  if (response.resultType !== 'single') {
    answers.push({ result: 'Error', statements: [], error: JSON.stringify(response.errors ?? response.resultType) })
    continue
  }
  const allows = response.result.analysis?.identityAnalysis?.allowStatements ?? []
  answers.push({ result: response.overallResult, statements: allows.map((s) => s.statement?.sid?.() ?? s.explain?.identifier ?? '?') })
}
process.stdout.write(JSON.stringify(answers))
