import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Ack as _eddy_v1_control_Ack, Ack__Output as _eddy_v1_control_Ack__Output } from './eddy/v1/control/Ack';
import type { CancelTasks as _eddy_v1_control_CancelTasks, CancelTasks__Output as _eddy_v1_control_CancelTasks__Output } from './eddy/v1/control/CancelTasks';
import type { CheckpointAck as _eddy_v1_control_CheckpointAck, CheckpointAck__Output as _eddy_v1_control_CheckpointAck__Output } from './eddy/v1/control/CheckpointAck';
import type { CheckpointComplete as _eddy_v1_control_CheckpointComplete, CheckpointComplete__Output as _eddy_v1_control_CheckpointComplete__Output } from './eddy/v1/control/CheckpointComplete';
import type { CheckpointPart as _eddy_v1_control_CheckpointPart, CheckpointPart__Output as _eddy_v1_control_CheckpointPart__Output } from './eddy/v1/control/CheckpointPart';
import type { CutCounters as _eddy_v1_control_CutCounters, CutCounters__Output as _eddy_v1_control_CutCounters__Output } from './eddy/v1/control/CutCounters';
import type { DeltaRef as _eddy_v1_control_DeltaRef, DeltaRef__Output as _eddy_v1_control_DeltaRef__Output } from './eddy/v1/control/DeltaRef';
import type { DeployTasks as _eddy_v1_control_DeployTasks, DeployTasks__Output as _eddy_v1_control_DeployTasks__Output } from './eddy/v1/control/DeployTasks';
import type { FileCommit as _eddy_v1_control_FileCommit, FileCommit__Output as _eddy_v1_control_FileCommit__Output } from './eddy/v1/control/FileCommit';
import type { Heartbeat as _eddy_v1_control_Heartbeat, Heartbeat__Output as _eddy_v1_control_Heartbeat__Output } from './eddy/v1/control/Heartbeat';
import type { JobCounters as _eddy_v1_control_JobCounters, JobCounters__Output as _eddy_v1_control_JobCounters__Output } from './eddy/v1/control/JobCounters';
import type { KeyGroupRange as _eddy_v1_control_KeyGroupRange, KeyGroupRange__Output as _eddy_v1_control_KeyGroupRange__Output } from './eddy/v1/control/KeyGroupRange';
import type { Leave as _eddy_v1_control_Leave, Leave__Output as _eddy_v1_control_Leave__Output } from './eddy/v1/control/Leave';
import type { MoveTasks as _eddy_v1_control_MoveTasks, MoveTasks__Output as _eddy_v1_control_MoveTasks__Output } from './eddy/v1/control/MoveTasks';
import type { QueryReply as _eddy_v1_control_QueryReply, QueryReply__Output as _eddy_v1_control_QueryReply__Output } from './eddy/v1/control/QueryReply';
import type { QueryRequest as _eddy_v1_control_QueryRequest, QueryRequest__Output as _eddy_v1_control_QueryRequest__Output } from './eddy/v1/control/QueryRequest';
import type { QueryValue as _eddy_v1_control_QueryValue, QueryValue__Output as _eddy_v1_control_QueryValue__Output } from './eddy/v1/control/QueryValue';
import type { Register as _eddy_v1_control_Register, Register__Output as _eddy_v1_control_Register__Output } from './eddy/v1/control/Register';
import type { RegisterReply as _eddy_v1_control_RegisterReply, RegisterReply__Output as _eddy_v1_control_RegisterReply__Output } from './eddy/v1/control/RegisterReply';
import type { RestoreFrom as _eddy_v1_control_RestoreFrom, RestoreFrom__Output as _eddy_v1_control_RestoreFrom__Output } from './eddy/v1/control/RestoreFrom';
import type { SectionRef as _eddy_v1_control_SectionRef, SectionRef__Output as _eddy_v1_control_SectionRef__Output } from './eddy/v1/control/SectionRef';
import type { SkippedRecord as _eddy_v1_control_SkippedRecord, SkippedRecord__Output as _eddy_v1_control_SkippedRecord__Output } from './eddy/v1/control/SkippedRecord';
import type { SourcePosition as _eddy_v1_control_SourcePosition, SourcePosition__Output as _eddy_v1_control_SourcePosition__Output } from './eddy/v1/control/SourcePosition';
import type { StageCounters as _eddy_v1_control_StageCounters, StageCounters__Output as _eddy_v1_control_StageCounters__Output } from './eddy/v1/control/StageCounters';
import type { StartTasks as _eddy_v1_control_StartTasks, StartTasks__Output as _eddy_v1_control_StartTasks__Output } from './eddy/v1/control/StartTasks';
import type { TaskFailure as _eddy_v1_control_TaskFailure, TaskFailure__Output as _eddy_v1_control_TaskFailure__Output } from './eddy/v1/control/TaskFailure';
import type { TriggerCheckpoint as _eddy_v1_control_TriggerCheckpoint, TriggerCheckpoint__Output as _eddy_v1_control_TriggerCheckpoint__Output } from './eddy/v1/control/TriggerCheckpoint';
import type { WatchEvent as _eddy_v1_control_WatchEvent, WatchEvent__Output as _eddy_v1_control_WatchEvent__Output } from './eddy/v1/control/WatchEvent';
import type { WatchRegister as _eddy_v1_control_WatchRegister, WatchRegister__Output as _eddy_v1_control_WatchRegister__Output } from './eddy/v1/control/WatchRegister';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  eddy: {
    v1: {
      control: {
        Ack: MessageTypeDefinition<_eddy_v1_control_Ack, _eddy_v1_control_Ack__Output>
        CancelTasks: MessageTypeDefinition<_eddy_v1_control_CancelTasks, _eddy_v1_control_CancelTasks__Output>
        CheckpointAck: MessageTypeDefinition<_eddy_v1_control_CheckpointAck, _eddy_v1_control_CheckpointAck__Output>
        CheckpointComplete: MessageTypeDefinition<_eddy_v1_control_CheckpointComplete, _eddy_v1_control_CheckpointComplete__Output>
        CheckpointPart: MessageTypeDefinition<_eddy_v1_control_CheckpointPart, _eddy_v1_control_CheckpointPart__Output>
        CutCounters: MessageTypeDefinition<_eddy_v1_control_CutCounters, _eddy_v1_control_CutCounters__Output>
        DeltaRef: MessageTypeDefinition<_eddy_v1_control_DeltaRef, _eddy_v1_control_DeltaRef__Output>
        DeployTasks: MessageTypeDefinition<_eddy_v1_control_DeployTasks, _eddy_v1_control_DeployTasks__Output>
        FileCommit: MessageTypeDefinition<_eddy_v1_control_FileCommit, _eddy_v1_control_FileCommit__Output>
        Heartbeat: MessageTypeDefinition<_eddy_v1_control_Heartbeat, _eddy_v1_control_Heartbeat__Output>
        JobCounters: MessageTypeDefinition<_eddy_v1_control_JobCounters, _eddy_v1_control_JobCounters__Output>
        KeyGroupRange: MessageTypeDefinition<_eddy_v1_control_KeyGroupRange, _eddy_v1_control_KeyGroupRange__Output>
        Leave: MessageTypeDefinition<_eddy_v1_control_Leave, _eddy_v1_control_Leave__Output>
        MoveTasks: MessageTypeDefinition<_eddy_v1_control_MoveTasks, _eddy_v1_control_MoveTasks__Output>
        QueryReply: MessageTypeDefinition<_eddy_v1_control_QueryReply, _eddy_v1_control_QueryReply__Output>
        QueryRequest: MessageTypeDefinition<_eddy_v1_control_QueryRequest, _eddy_v1_control_QueryRequest__Output>
        QueryValue: MessageTypeDefinition<_eddy_v1_control_QueryValue, _eddy_v1_control_QueryValue__Output>
        Register: MessageTypeDefinition<_eddy_v1_control_Register, _eddy_v1_control_Register__Output>
        RegisterReply: MessageTypeDefinition<_eddy_v1_control_RegisterReply, _eddy_v1_control_RegisterReply__Output>
        RestoreFrom: MessageTypeDefinition<_eddy_v1_control_RestoreFrom, _eddy_v1_control_RestoreFrom__Output>
        SectionRef: MessageTypeDefinition<_eddy_v1_control_SectionRef, _eddy_v1_control_SectionRef__Output>
        SkippedRecord: MessageTypeDefinition<_eddy_v1_control_SkippedRecord, _eddy_v1_control_SkippedRecord__Output>
        SourcePosition: MessageTypeDefinition<_eddy_v1_control_SourcePosition, _eddy_v1_control_SourcePosition__Output>
        StageCounters: MessageTypeDefinition<_eddy_v1_control_StageCounters, _eddy_v1_control_StageCounters__Output>
        StartTasks: MessageTypeDefinition<_eddy_v1_control_StartTasks, _eddy_v1_control_StartTasks__Output>
        TaskFailure: MessageTypeDefinition<_eddy_v1_control_TaskFailure, _eddy_v1_control_TaskFailure__Output>
        TriggerCheckpoint: MessageTypeDefinition<_eddy_v1_control_TriggerCheckpoint, _eddy_v1_control_TriggerCheckpoint__Output>
        WatchEvent: MessageTypeDefinition<_eddy_v1_control_WatchEvent, _eddy_v1_control_WatchEvent__Output>
        WatchRegister: MessageTypeDefinition<_eddy_v1_control_WatchRegister, _eddy_v1_control_WatchRegister__Output>
      }
    }
  }
}

